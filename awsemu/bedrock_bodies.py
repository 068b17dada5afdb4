"""InvokeModel's native request and reply bodies, translated to and from the Converse shape the emulator
answers: the Anthropic messages body (`anthropic_version: bedrock-2023-05-31`) and the Amazon Nova body.
Other model families are not emulated and say so."""

import re
import uuid

from awsemu.wire import AwsError

INVALID = "ValidationException"
ANTHROPIC_VERSION = "bedrock-2023-05-31"
ANTHROPIC_KEYS = {"anthropic_version", "anthropic_beta", "max_tokens", "messages", "system", "stop_sequences",
                  "temperature", "top_p", "top_k", "tools", "tool_choice", "metadata", "thinking"}  # fmt: skip
NOVA_KEYS = {"schemaVersion", "system", "messages", "inferenceConfig", "toolConfig"}


def to_converse(model: str, body: dict) -> dict:
    if model.startswith("anthropic."):
        return _anthropic_request(body)
    if model.startswith("amazon.nova"):
        return _nova_request(body)
    raise AwsError(INVALID, 400, f"The emulator's InvokeModel speaks the Anthropic and Amazon Nova bodies only, not "
                   f"{model}'s; use Converse.")  # fmt: skip


def from_converse(model: str, reply: dict) -> dict:
    if model.startswith("anthropic."):
        return _anthropic_reply(model, reply)
    return _nova_reply(reply)


def _malformed(problem: str) -> AwsError:
    # The wording of Bedrock's JSON-schema check of native bodies.
    return AwsError(INVALID, 400, f"Malformed input request: {problem}, please reformat your input and try again.")


def _anthropic_request(body: dict) -> dict:
    for key in ("anthropic_version", "max_tokens", "messages"):
        if key not in body:
            raise _malformed(f"#: required key [{key}] not found")
    extra = sorted(set(body) - ANTHROPIC_KEYS)
    if extra:
        raise _malformed(f"#: extraneous key [{extra[0]}] is not permitted")
    if body["anthropic_version"] != ANTHROPIC_VERSION:
        raise _malformed(f"#/anthropic_version: {body['anthropic_version']!r} is not a valid enum value")
    system = body.get("system") or []
    system = [{"type": "text", "text": system}] if isinstance(system, str) else system
    messages = []
    for message in body["messages"] if isinstance(body["messages"], list) else []:
        content = message.get("content") if isinstance(message, dict) else None
        content = [{"type": "text", "text": content}] if isinstance(content, str) else content
        messages.append({"role": message.get("role") if isinstance(message, dict) else None,
                         "content": _anthropic_blocks(content or [])})  # fmt: skip
    config = {"maxTokens": body["max_tokens"]}
    for ours, theirs in (("temperature", "temperature"), ("topP", "top_p"), ("stopSequences", "stop_sequences")):
        if theirs in body:
            config[ours] = body[theirs]
    return {"system": _anthropic_blocks(system), "messages": messages, "inferenceConfig": config}


def _anthropic_blocks(blocks: list) -> list[dict]:
    """Anthropic text blocks as Converse blocks; `cache_control` becomes a cachePoint after its block."""
    converted = []
    for block in blocks:
        if not isinstance(block, dict) or block.get("type") != "text" or not isinstance(block.get("text"), str):
            raise _malformed("#/messages: the emulator accepts text content blocks only")
        converted.append({"text": block["text"]})
        if block.get("cache_control"):
            converted.append({"cachePoint": {"type": "default"}})
    return converted


def _anthropic_reply(model: str, reply: dict) -> dict:
    usage = reply["usage"]
    text = reply["output"]["message"]["content"][0]["text"]
    return {
        "id": f"msg_bdrk_{uuid.uuid4().hex[:24]}",
        "type": "message",
        "role": "assistant",
        "model": re.sub(r"-v\d+:\d+$", "", model.removeprefix("anthropic.")),
        "content": [{"type": "text", "text": text}],
        "stop_reason": reply["stopReason"],
        "stop_sequence": None,
        "usage": {
            "input_tokens": usage["inputTokens"],
            "output_tokens": usage["outputTokens"],
            "cache_creation_input_tokens": usage.get("cacheWriteInputTokens", 0),
            "cache_read_input_tokens": usage.get("cacheReadInputTokens", 0),
        },
    }


def _nova_request(body: dict) -> dict:
    extra = sorted(set(body) - NOVA_KEYS)
    if extra:
        raise _malformed(f"#: extraneous key [{extra[0]}] is not permitted")
    if "messages" not in body:
        raise _malformed("#: required key [messages] not found")
    native = body.get("inferenceConfig") or {}
    config = {}
    for ours, theirs in (("maxTokens", "max_new_tokens"), ("temperature", "temperature"), ("topP", "top_p"),
                         ("stopSequences", "stopSequences")):  # fmt: skip
        if theirs in native:
            config[ours] = native[theirs]
    return {"system": body.get("system") or [], "messages": body["messages"], "inferenceConfig": config}


def _nova_reply(reply: dict) -> dict:
    usage = reply["usage"]
    return {
        "output": reply["output"],
        "stopReason": reply["stopReason"],
        "usage": {
            "inputTokens": usage["inputTokens"],
            "outputTokens": usage["outputTokens"],
            "totalTokens": usage["totalTokens"],
            "cacheReadInputTokenCount": usage.get("cacheReadInputTokens", 0),
            "cacheWriteInputTokenCount": usage.get("cacheWriteInputTokens", 0),
        },
    }
