"""Bedrock Runtime: Converse, ConverseStream, InvokeModel (text models, and Titan embeddings in `embeddings`) and
ApplyGuardrail, with the validation the real service applies, prompt caching (`cachePoint`), default prompt routers, guardrails and a tokens-per-minute quota.

Every call is answered as a Converse request; InvokeModel's native bodies are translated in `bedrock_bodies`.
"""

import hashlib
import math
import re
import threading
import time
from dataclasses import dataclass

from awsemu import bedrock_bodies, embeddings, eventstream, textgen
from awsemu.budget import TokenBudget
from awsemu.guardrails import SOURCES, GuardrailStore, apply_reply, assess
from awsemu.wire import AwsError, read_json

INVALID = "ValidationException"
DEFAULT_MAX_TOKENS = 4096
CHARS_PER_TOKEN = 4  # the usual rough estimate for English text
PROFILE_PREFIXES = ("us.", "eu.", "apac.")
CACHE_TTL_S = {"5m": 300, "1h": 3600}
CACHE_UNSUPPORTED = (
    "You invoked an unsupported model or your request did not allow prompt caching. "
    "See the documentation for more information."
)
ROUTER_LARGE_FROM_TOKENS = 400  # a default prompt router sends prompts at least this long to its larger model
WORDS_PER_DELTA = 4


@dataclass(frozen=True)
class Model:
    on_demand: bool = True  # False: only reachable through an inference profile
    profile: bool = True  # a cross-region inference profile ("us." etc.) exists
    system_prompts: bool = True
    cache_min_tokens: int = 0  # prompt caching: fewest tokens before a checkpoint; 0: caching unsupported


MODELS = {
    "amazon.nova-micro-v1:0": Model(cache_min_tokens=1000),
    "amazon.nova-lite-v1:0": Model(cache_min_tokens=1000),
    "amazon.nova-pro-v1:0": Model(cache_min_tokens=1000),
    "anthropic.claude-3-haiku-20240307-v1:0": Model(),
    "anthropic.claude-3-5-haiku-20241022-v1:0": Model(cache_min_tokens=2048),
    "anthropic.claude-3-5-sonnet-20240620-v1:0": Model(),
    "anthropic.claude-3-5-sonnet-20241022-v2:0": Model(on_demand=False),
    "anthropic.claude-3-7-sonnet-20250219-v1:0": Model(on_demand=False, cache_min_tokens=1024),
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
# Bedrock's default prompt routers: (smaller model, larger model).
ROUTERS = {
    "anthropic.claude:1": ("anthropic.claude-3-haiku-20240307-v1:0", "anthropic.claude-3-5-sonnet-20240620-v1:0"),
    "meta.llama:1": ("meta.llama3-1-8b-instruct-v1:0", "meta.llama3-1-70b-instruct-v1:0"),
    "amazon.nova:1": ("amazon.nova-lite-v1:0", "amazon.nova-pro-v1:0"),
}

FAULTS = {
    "throttle": ("ThrottlingException", 429, "Too many requests, please wait before trying again."),
    "timeout": ("ModelTimeoutException", 408, "Model has timed out in processing the request."),
    "internal": ("InternalServerException", 500, "The server encountered an internal error."),
    "unavailable": ("ServiceUnavailableException", 503, "The service is temporarily unavailable."),
}


@dataclass(frozen=True)
class Target:
    """What a model id names: one model, or a prompt router choosing between two."""

    name: str
    model: Model
    router: tuple[str, str] | None = None
    region: str = "us-east-1"
    account: str = "123456789012"

    def pick(self, input_tokens: int) -> tuple[str, str]:
        """(the model that answers, the invoked-model ARN a router reports or "")."""
        if self.router is None:
            return self.name, ""
        name = self.router[input_tokens >= ROUTER_LARGE_FROM_TOKENS]
        profile = f"{PROFILE_PREFIXES[0]}{name}"
        return name, f"arn:aws:bedrock:{self.region}:{self.account}:inference-profile/{profile}"


class BedrockRuntime:
    def __init__(self, knobs):
        self.knobs = knobs
        self.budget = TokenBudget()
        self.guardrails = GuardrailStore()
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str], float] = {}  # (model, prefix digest) -> expiry (monotonic)

    def clear(self) -> None:
        self.budget.clear()
        self.guardrails.clear()
        with self._lock:
            self._cache.clear()

    def converse(self, model_id: str, body: bytes, started: float, **where) -> dict:
        return self.answer(model_id, read_json(body, INVALID), started, **where)

    def converse_stream(self, model_id: str, body: bytes, started: float, **where) -> bytes:
        return stream(self.converse(model_id, body, started, **where))

    def invoke_model(self, model_id: str, body: bytes, headers, started: float, **where) -> tuple[bytes, dict]:
        """The native reply body and its token-count headers."""
        if embeddings.serves(model_id):
            return embeddings.invoke(read_json(body, INVALID))
        name = resolve(model_id).name
        request = bedrock_bodies.to_converse(name, read_json(body, INVALID))
        if headers.get("X-Amzn-Bedrock-GuardrailIdentifier"):
            request["guardrailConfig"] = {
                "guardrailIdentifier": headers["X-Amzn-Bedrock-GuardrailIdentifier"],
                "guardrailVersion": headers.get("X-Amzn-Bedrock-GuardrailVersion", ""),
            }
        reply = self.answer(model_id, request, started, **where)
        usage = reply["usage"]
        return bedrock_bodies.from_converse(name, reply), {
            "X-Amzn-Bedrock-Input-Token-Count": str(usage["inputTokens"]),
            "X-Amzn-Bedrock-Output-Token-Count": str(usage["outputTokens"]),
            "X-Amzn-Bedrock-Invocation-Latency": str(reply["metrics"]["latencyMs"]),
        }

    def apply_guardrail(self, identifier: str, version: str, body: bytes) -> dict:
        request = read_json(body, INVALID)
        guardrail = self.guardrails.get(identifier, version)
        if request.get("source") not in SOURCES:
            raise AwsError(INVALID, 400, "source must be INPUT or OUTPUT.")
        texts = [(block.get("text") or {}).get("text", "") for block in request.get("content") or []]
        if not texts:
            raise AwsError(INVALID, 400, "content must hold at least one text block.")
        return apply_reply(guardrail, texts, request["source"], request.get("outputScope", "INTERVENTIONS"))

    def answer(self, model_id: str, request: dict, started: float, *, region: str = "us-east-1",
               account: str = "123456789012", metered: bool = True) -> dict:  # fmt: skip
        """The Converse reply to a Converse-shaped request, or AwsError as the real service would answer.
        `metered=False` (batch inference) leaves the on-demand tokens-per-minute quota alone."""
        target = resolve(model_id, region, account)
        messages, system_blocks = _messages(request), _system_blocks(request)
        max_tokens, stop_sequences = _inference_config(request)
        config = request.get("guardrailConfig") or {}
        guardrail = self._guardrail(config)
        blocks = system_blocks + [block for message in messages for block in message["content"]]
        input_tokens = estimate_tokens("".join(_block_text(block) for block in blocks))
        name, invoked = target.pick(input_tokens)
        if any(_block_text(block) for block in system_blocks) and not MODELS[name].system_prompts:
            raise AwsError(INVALID, 400, "This model doesn't support system messages.")
        cached = self._cache_usage(name, MODELS[name], blocks)
        limit = self.knobs.value("tokens_per_minute", model_id) if metered else 0
        charge = self.budget.reserve(model_id, input_tokens + max_tokens, limit)
        user_turn = next(m for m in reversed(messages) if m["role"] == "user")["content"]
        text, stop_reason, trace = _write(user_turn, max_tokens, stop_sequences, guardrail, config)
        if invoked:
            trace["promptRouter"] = {"invokedModelId": invoked}
        output_tokens = min(estimate_tokens(text), max_tokens)
        self.budget.settle(charge, input_tokens + output_tokens)
        reply = {
            "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
            "stopReason": stop_reason,
            "usage": _usage(input_tokens, output_tokens, *cached),
            "metrics": {"latencyMs": int((time.monotonic() - started) * 1000)},
        }
        return {**reply, "trace": trace} if trace else reply

    def _guardrail(self, config):
        if not config:
            return None
        if not config.get("guardrailIdentifier") or not config.get("guardrailVersion"):
            raise AwsError(INVALID, 400, "guardrailConfig needs guardrailIdentifier and guardrailVersion.")
        return self.guardrails.get(config["guardrailIdentifier"], config["guardrailVersion"])

    def _cache_usage(self, name: str, model: Model, blocks: list[dict]) -> tuple[int, int]:
        """(tokens read from the prompt cache, tokens written to it) for the request's cache checkpoints."""
        points, prefix = [], ""
        for block in blocks:
            if "cachePoint" in block:
                points.append((prefix, block["cachePoint"].get("ttl", "5m")))
            prefix += _block_text(block)
        if not points:
            return 0, 0
        if not model.cache_min_tokens:
            raise AwsError(INVALID, 400, CACHE_UNSUPPORTED)
        # A checkpoint with too short a prefix is ignored, as on AWS; the longest one that qualifies is used.
        eligible = [(text, ttl) for text, ttl in points if estimate_tokens(text) >= model.cache_min_tokens]
        if not eligible:
            return 0, 0
        text, ttl = eligible[-1]
        key, now = (name, hashlib.sha256(text.encode()).hexdigest()), time.monotonic()
        with self._lock:
            hit = self._cache.get(key, 0) > now
            self._cache[key] = now + CACHE_TTL_S.get(ttl, CACHE_TTL_S["5m"])
        tokens = estimate_tokens(text)
        return (tokens, 0) if hit else (0, tokens)


def resolve(model_id: str, region: str = "us-east-1", account: str = "123456789012") -> Target:
    """What a model id, inference-profile id, prompt-router ARN or model ARN names, if on-demand calls may
    reach it."""
    name = model_id
    if model_id.startswith("arn:"):
        kind, _, name = model_id.split(":", 5)[-1].partition("/")
        if kind == "default-prompt-router":
            if name not in ROUTERS:
                raise AwsError("ResourceNotFoundException", 404, f"Prompt router {model_id} not found.")
            return Target(name, MODELS[ROUTERS[name][0]], ROUTERS[name], region, account)
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
    return Target(name[len(prefix) :], model, None, region, account)


def estimate_tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / CHARS_PER_TOKEN))


def limit_text(text: str, max_tokens: int, stop_sequences: list[str]) -> tuple[str, str, str | None]:
    """The text cut at the first stop sequence or at max_tokens, the stopReason, and the stop sequence hit."""
    cuts = sorted((text.find(stop), stop) for stop in stop_sequences if stop in text)
    stop = cuts[0][1] if cuts else None
    if cuts:
        text, reason = text[: cuts[0][0]], "stop_sequence"
    else:
        reason = "end_turn"
    if estimate_tokens(text) > max_tokens:
        return text[: max_tokens * CHARS_PER_TOKEN], "max_tokens", None
    return text, reason, stop


def stream(reply: dict) -> bytes:
    """A Converse reply as the ConverseStream events that carry it."""
    text = reply["output"]["message"]["content"][0]["text"]
    pieces = re.findall(r"\s*\S+|\s+$", text)
    deltas = ["".join(pieces[i : i + WORDS_PER_DELTA]) for i in range(0, len(pieces), WORDS_PER_DELTA)]
    metadata = {key: reply[key] for key in ("usage", "metrics", "trace") if key in reply}
    return b"".join([
        eventstream.event("messageStart", {"role": "assistant"}),
        *(eventstream.event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": d}}) for d in deltas),
        eventstream.event("contentBlockStop", {"contentBlockIndex": 0}),
        eventstream.event("messageStop", {"stopReason": reply["stopReason"]}),
        eventstream.event("metadata", metadata),
    ])  # fmt: skip


def _write(user_turn: list[dict], max_tokens: int, stops: list[str], guardrail, config: dict):
    """(text, stopReason, trace): the model's answer to the user turn, screened by the guardrail if any."""
    if guardrail is None:
        return (*limit_text(textgen.reply(_text(user_turn)), max_tokens, stops)[:2], {})
    traced = config.get("trace", "disabled") != "disabled"
    verdict_in = assess(guardrail, _guarded_text(user_turn), "INPUT")
    trace = {"guardrail": {"inputAssessment": {guardrail.guardrail_id: verdict_in.assessment}}} if traced else {}
    if verdict_in.blocked:  # the model never sees a blocked prompt
        return verdict_in.text, "guardrail_intervened", trace
    text, stop_reason, _ = limit_text(textgen.reply(_text(user_turn)), max_tokens, stops)
    verdict_out = assess(guardrail, text, "OUTPUT")
    if traced:
        trace["guardrail"]["outputAssessments"] = {guardrail.guardrail_id: [verdict_out.assessment]}
    if verdict_out.intervened:
        return verdict_out.text, "guardrail_intervened", trace
    return text, stop_reason, trace


def _usage(input_tokens: int, output_tokens: int, cache_read: int, cache_write: int) -> dict:
    # Converse counts cached tokens apart from inputTokens; totalTokens covers them all.
    usage = {"inputTokens": input_tokens - cache_read - cache_write, "outputTokens": output_tokens,
             "totalTokens": input_tokens + output_tokens}  # fmt: skip
    if cache_read or cache_write:
        usage.update(cacheReadInputTokens=cache_read, cacheWriteInputTokens=cache_write)
    return usage


def _messages(request: dict) -> list[dict]:
    messages = request.get("messages")
    if not isinstance(messages, list) or not messages:
        raise AwsError(INVALID, 400, "1 validation error detected: Value at 'messages' must not be empty.")
    roles = []
    for message in messages:
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise AwsError(INVALID, 400, "Each message needs a role of 'user' or 'assistant'.")
        content = message.get("content")
        if not isinstance(content, list) or not content or not all(isinstance(b, dict) for b in content):
            raise AwsError(INVALID, 400, "The content field in the Message object is empty.")
        roles.append(message["role"])
    if roles[0] != "user":
        raise AwsError(INVALID, 400, "A conversation must start with a user message.")
    if any(a == b for a, b in zip(roles, roles[1:], strict=False)):
        raise AwsError(INVALID, 400, "A conversation must alternate between user and assistant roles.")
    return messages


def _system_blocks(request: dict) -> list[dict]:
    blocks = request.get("system") or []
    if not isinstance(blocks, list) or not all(isinstance(block, dict) for block in blocks):
        raise AwsError(INVALID, 400, "The system field must be a list of content blocks.")
    return blocks


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


def _text(content: list[dict]) -> str:
    return "".join(_block_text(block) for block in content)


def _block_text(block: dict) -> str:
    if "guardContent" in block:
        return (block["guardContent"].get("text") or {}).get("text", "")
    return block.get("text", "") if isinstance(block.get("text"), str) else ""


def _guarded_text(content: list[dict]) -> str:
    """What a guardrail assesses in a user turn: its guardContent blocks when it marks some, else all of it."""
    guarded = [block for block in content if "guardContent" in block]
    return _text(guarded or content)
